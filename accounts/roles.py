"""Staff roles: Django groups and the permissions each one carries."""

AGENTS = "agents"
SUPERVISORS = "supervisors"

AGENT_PERMISSIONS = ["tickets.work_ticket"]
SUPERVISOR_PERMISSIONS = [
    *AGENT_PERMISSIONS,
    "tickets.approve_sensitive_change",
    "tickets.view_audit_log",
    "tickets.manage_disclosures",
    "tickets.export_customer",
]
ROLE_PERMISSIONS = {AGENTS: AGENT_PERMISSIONS, SUPERVISORS: SUPERVISOR_PERMISSIONS}
