"""The backups context: archives of servers, schedules and restores."""
