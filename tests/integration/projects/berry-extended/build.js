const fs = require("fs");
const ms = require("ms/package.json").version;
// is-number comes only from .yarnrc.yml's packageExtensions (ms has no dependencies)
const extended = fs.existsSync("node_modules/is-number") ? require("is-number/package.json").version : "none";
const line = `ms=${ms} extended=${extended}`;
console.log("FIXTURE " + line);
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", `<!doctype html><p>${line}</p>`);
