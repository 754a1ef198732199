"""What the ``perdure`` command and the HTTP server share: the JSON shapes of workflows and
histories, operations on many workflows at once, the replay check and history files.

Sits on ``client`` and ``worker``; ``cli`` (and the server) sit on it. Nothing here prints.
"""
