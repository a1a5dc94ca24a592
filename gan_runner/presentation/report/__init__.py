"""``gan-report``: one table and a few pictures comparing the runs under a folder."""
