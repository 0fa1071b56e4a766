"""Attendance: punches in, the monthly timesheet out (contract: shared spec attendance-v1)."""
