"""Dev sessions: one live Vite dev server per project, as isolated as a build step.

record.py     the session's record in Redis and its public JSON body (pure)
vite.py       facts about the project's Vite: known holes, dependency fields (pure)
proxy_rules   what the preview proxy lets through to a session (pure)
folders.py    where the session's app is (its ``root``) and what its install reads (pure)
registry.py   sessions, workers and commands in Redis (the API finds sessions here)
container.py  the session container's Docker arguments (pure)
install.py    dependencies the way builds install them (layer, or proxied install)
manager.py    the worker-side process that runs sessions (``kiln dev-worker``)
service.py    what the API and CLI call: start, edit, report, stop, build
agent/        the Node agent inside the container and the browser hook
"""
