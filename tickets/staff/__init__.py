"""Staff screens, one module per screen.

The queue, a ticket and its actions, a customer, the audit log, the dashboard.
"""
