"""A build's life, from its claim by a worker to its end.

- ``plan``: which steps run with which commands, and what a step's end means (pure).
- ``install``: which install runs, per package manager (pure).
- ``provision``: dependency layers for a build (hit, miss, or private).
- ``lifecycle``: every transition of a build and its one ``end`` event.
- ``outcome``: how a run ended; the one place an exception becomes that (pure).
- ``pipeline``: one build run, top to bottom, taking its rounds; ``generation``: the
  generate → build → fix rounds.
- ``diagnostics``: a failed build's log turned into a report (pure).
- ``public``: a build's public JSON shape.
- ``reuse``: answering an identical submit with an earlier artifact.
- ``recovery``: builds whose worker was lost; ``jobs``: the RQ queue's side of builds.
- ``warm``: preparing the bundled templates' layers when a worker starts.

Imports every package below it except ``ops``; nothing below imports it.
"""
