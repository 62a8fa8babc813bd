"""The baseline of bench/webhook_ingest.py: one POST route that reads the body, answers 200 JSON.

gunicorn --workers 2 bare_app:app   (bench/webhook_ingest.py starts it, from bench/)
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/shopify")
def receive():
    """Read the body, answer as the gateway does."""
    request.get_data()
    return jsonify({"status": "accepted"}), 200
