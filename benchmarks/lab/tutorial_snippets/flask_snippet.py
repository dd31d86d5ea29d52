"""DO NOT COPY: the Flask serving snippet most tutorials show, run only as a benchmark reference.

What is wrong with it, on purpose: no validation (a missing or extra field shifts the columns
silently, a string or NaN crashes the view into an HTML 500), features taken in whatever
order the client's JSON happens to have, an unchecked pickle loaded at import, no model
version in the answer. The lab's flask_app/ is the version to copy.
"""

import os

import joblib
from flask import Flask, jsonify, request

app = Flask(__name__)
model = joblib.load(os.environ.get("MODEL_PATH", "shared_model/model.pkl"))


@app.route("/predict", methods=["POST"])
def predict():
    data = request.get_json()
    prediction = model.predict([list(data.values())])
    return jsonify({"prediction": prediction[0]})


# Not in the tutorials: the lab's launcher waits for this route before it sends load.
@app.route("/health")
def health():
    return jsonify({"status": "ok"})
