"""REST API v1, one module per resource.

One APIView per operation, each calling one service or selector.
"""
