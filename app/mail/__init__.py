"""Email: the transactional outbox, templates, and SMTP delivery (aiosmtplib)."""
