"""The machine face: the API's bodies as pydantic models, shared by server and client.

``models`` holds the substrate, relationship, query and health bodies; ``runtime`` the
bodies of the runtime endpoints (stats, status, connections, manifold). The HTTP plugin
validates requests and documents responses with them; the client parses responses into
them, so each body has exactly one definition.
"""
