"""Background jobs (procrastinate): each job carries its tenant and runs in that tenant's transaction."""
