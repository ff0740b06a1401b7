"""Use cases: what a command does, as plain functions the CLI calls now and a server later.

Each takes typed inputs (a loaded Fleet and its Plan, paths, choices) and, where it reports
progress, an event sink (`dockyard.events.Sink`); it returns a typed result and raises the
errors of `dockyard.errors`. Rendering the results and events is the caller's business."""
