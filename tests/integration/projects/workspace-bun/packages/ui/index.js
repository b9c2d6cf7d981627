module.exports = "ui-from-workspace";
