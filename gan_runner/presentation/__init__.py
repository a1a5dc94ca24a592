"""What people look at: reports, charts, tables and the per-task timeline."""
