"""REST API v1: one APIView per operation, each calling one service or selector."""

# --- password resend (api) ---

# --- modify personal information (api) ---

# --- opt-out (api) ---

# --- tickets resource, staff actions, health (api) ---
