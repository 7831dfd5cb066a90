"""Shared analysis: name resolution, loss scopes and value facts. Imports no rule, output or CLI."""
