const fs = require("fs");
const ms = require("ms/package.json").version;
const agent = process.env.npm_config_user_agent || "";
const marker = fs.existsSync("postinstall.txt") ? fs.readFileSync("postinstall.txt", "utf8").trim() : "none";
const line = `node=${process.version} ms=${ms} agent=${agent.split(" ")[0]} postinstall=${marker}`;
console.log("FIXTURE " + line);
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", `<!doctype html><p>${line}</p>`);
