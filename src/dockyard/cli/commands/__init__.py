"""The commands, one module per group; `dockyard.cli` registers them on the app."""
