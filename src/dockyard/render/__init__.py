"""Render: Plan -> files. Pure and deterministic: same manifest, same bytes."""
