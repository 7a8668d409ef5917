"""Reactive actions: rules over the published history, their table and their delivery."""
