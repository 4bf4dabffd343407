"""A FastAPI app behind Mangum, the common ASGI adapter for API Gateway and function URLs,
with the routes a web app has: path parameters, query strings, cookies set and read, a
JSON body, binary bodies both ways and a redirect; plus plain handlers answering in
API Gateway's shape, with a plain value, or with an error."""

import hashlib
from typing import Annotated

from fastapi import Cookie, FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse
from mangum import Mangum
from pydantic import BaseModel

# The 1x1 PNG the app serves: its bytes are not UTF-8, so they must travel as base64.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201ffa1b2e8c40000000049454e44ae426082"
)

app = FastAPI()


class Order(BaseModel):
    item: str
    quantity: int


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None, tag: Annotated[list[str] | None, Query()] = None) -> dict:
    return {"item_id": item_id, "q": q, "tags": tag or []}


@app.post("/login")
def login(user: str, response: Response) -> dict:
    response.set_cookie("session", f"token-{user}", httponly=True)
    response.set_cookie("theme", "dark")
    return {"logged_in": user}


@app.get("/me")
def me(session: str | None = Cookie(default=None), theme: str | None = Cookie(default=None)) -> dict:
    return {"session": session, "theme": theme}


@app.post("/orders", status_code=201)
def create_order(order: Order) -> dict:
    return {"item": order.item, "quantity": order.quantity, "total_cents": order.quantity * 250}


@app.get("/pixel.png")
def pixel() -> Response:
    return Response(content=PIXEL, media_type="image/png")


@app.post("/upload")
async def upload(request: Request) -> dict:
    data = await request.body()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@app.get("/old-items")
def moved() -> RedirectResponse:
    return RedirectResponse("/items/7?q=moved", status_code=307)


handler = Mangum(app, lifespan="off")


def teapot(event, context):
    return {
        "statusCode": 418,
        "headers": {"Content-Type": "text/plain", "X-Path": event["rawPath"]},
        "multiValueHeaders": {"X-Tried": ["tea", "coffee"]},
        "body": f"short and stout: {event['requestContext']['http']['method']}",
    }


def plain_dict(event, context):
    return {"path": event["rawPath"], "query": event.get("queryStringParameters"), "body": event.get("body")}


def plain_string(event, context):
    return "just a string"


def fail(event, context):
    raise RuntimeError("the handler failed")
