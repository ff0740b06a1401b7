"""Pure decisions over observed engine state: no Docker, no subprocess, no clock."""
