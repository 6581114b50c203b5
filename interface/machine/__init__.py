"""The machine face: the API's bodies as pydantic models, shared by server and client.

``models`` holds the substrate, relationship, query and health bodies; ``runtime`` the
bodies of the runtime endpoints (stats, status, connections, manifold); ``access`` those
of API keys and the JWT login. The HTTP and auth plugins validate requests and document
responses with them; the client parses responses into them, so each body has exactly one
definition.
"""
