"""The edge: bytes in and out. Start-up and the WebSocket server, the HTTP
endpoints and handshake checks, the CLI's options table, GitHub's HTTP
client, logs and the garbage-collector policy."""
