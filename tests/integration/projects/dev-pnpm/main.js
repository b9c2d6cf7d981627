document.getElementById('node').textContent = __NODE__
document.getElementById('pnpm').textContent = String(__PNPM__)
