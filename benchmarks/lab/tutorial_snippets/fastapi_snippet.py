"""DO NOT COPY: the FastAPI serving snippet most tutorials show, run only as a benchmark reference.

What is wrong with it, on purpose: `data: dict` means FastAPI validates nothing (the OpenAPI
page shows an empty object, a missing field shifts the columns silently, a string or NaN
ends in a 500), features are taken in the client's key order, an unchecked pickle is loaded
at import, and the answer carries no model version. The lab's fastapi_app/ is the version to copy.
"""

import os

import joblib
from fastapi import FastAPI

app = FastAPI()
model = joblib.load(os.environ.get("MODEL_PATH", "shared_model/model.pkl"))


@app.post("/predict")
def predict(data: dict):
    prediction = model.predict([list(data.values())])
    return {"prediction": prediction[0]}


# Not in the tutorials: the lab's launcher waits for this route before it sends load.
@app.get("/health")
def health():
    return {"status": "ok"}
