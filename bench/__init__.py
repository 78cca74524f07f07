"""Benchmark of `cdt` against the original tool and the peers a user would pick instead.

`make bench` (or `.venv/bin/python -m bench`) creates a virtualenv per tool under bench/.envs/,
starts one PostgreSQL server, generates N empty migrations in each tool's own format, times each
command as a whole process (median of several runs after a warm-up, with peak RSS), counts the
statements the server sees in a no-op run, and prints one table with the targets it checks.
"""
