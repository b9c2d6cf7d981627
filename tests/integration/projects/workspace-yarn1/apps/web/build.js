const fs = require("fs");
const ui = require("ui");
const ms = require("ms/package.json").version;
const agent = (process.env.npm_config_user_agent || "").split(" ")[0];
const line = `ui=${ui} ms=${ms} agent=${agent} cwd=${process.cwd()}`;
console.log("FIXTURE " + line);
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", `<!doctype html><p>${line}</p>`);
