#!/bin/sh
# Makes one tiny project per package manager with the real tools, pinning ms to 2.1.1.
set -e
base='{"name":"sample","version":"1.0.0","private":true,"dependencies":{"ms":"2.1.1"}}'
for m in npm pnpm yarn1 berry bun; do rm -rf $m; mkdir $m; echo "$base" > $m/package.json; done
(cd npm && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
(cd pnpm && npx -y pnpm@10.34.9 install --ignore-scripts >/dev/null)
(cd yarn1 && npx -y yarn@1.22.22 install --ignore-scripts >/dev/null)
(cd berry && YARN_ENABLE_GLOBAL_CACHE=0 YARN_NODE_LINKER=node-modules npx -y @yarnpkg/cli-dist@4.18.1 install --mode=skip-build >/dev/null)
(cd bun && npx -y bun@1.4.5 install --ignore-scripts >/dev/null)
