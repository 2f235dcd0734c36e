"""Scripted end-to-end dialogues through the HTTP API on a real uvicorn server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
from typing import Any

import httpx
from bot_harness import Customer, Shop, console_login, parse_sse

from glm_agent.serving.bot import SupportBot


def read_events(
    url: str, conv: Customer, after: int, want: int, found: list[dict[str, Any]]
) -> None:
    """Collect `want` events from the long-lived /events stream (in a thread)."""
    with (
        httpx.Client(base_url=url, timeout=20) as c,
        c.stream(
            "GET", f"/v1/support/conversations/{conv.id}/events?after={after}", headers=conv.headers
        ) as r,
    ):
        buf = ""
        for chunk in r.iter_text():
            buf += chunk
            while "\n\n" in buf:
                block, buf = buf.split("\n\n", 1)
                found.extend(parse_sse(block + "\n\n"))
                if len(found) >= want:
                    return


def test_order_return_confirmation_handoff_human_and_back(
    server: str, client: httpx.Client, bot: SupportBot, shop: Shop
) -> None:
    me = Customer(client)
    assert me.greeting and me.greeting.startswith("Hello")

    # Order lookup: streamed deltas, then the complete message.
    events = me.say("where is my order A-1001?")
    deltas = "".join(e["text"] for e in events if e["type"] == "delta")
    [answer] = [e for e in events if e["type"] == "message" and e["role"] == "bot"]
    assert answer["text"] == "Order A-1001 is delivered." == deltas
    assert answer["source"] == "model" and isinstance(answer["id"], int)
    assert events[-1] == {"type": "done"}

    # A return needs the customer's confirmation: nothing changes before the "yes".
    [ask] = me.replies("I want to return A-1001")
    # Asked in words, never as a function call.
    assert "A-1001" in ask["text"] and '"yes"' in ask["text"] and "return_order" not in ask["text"]
    assert ask["source"] == "confirmation" and ask["confirm"][0]["tool"] == "return_order"
    assert shop.orders["A-1001"]["status"] == "delivered"
    [done] = me.replies("yes")
    assert done["text"] == "Order A-1001 is return_requested."
    assert shop.orders["A-1001"]["status"] == "return_requested"

    # Declining a second action leaves the order alone.
    shop.orders["A-1003"]["status"] = "delivered"
    me.replies("return A-1003 please")
    [declined] = me.replies("no")
    assert declined["text"].startswith("Not done")
    assert shop.orders["A-1003"]["status"] == "delivered"
    # Answering a confirmation with something else declines it and answers the new message.
    me.replies("return A-1003 please")
    declined, answered = me.replies("hmm, what about A-1005?")
    assert (
        declined["text"].startswith("Not done") and answered["text"] == "Order A-1005 is delivered."
    )
    assert shop.orders["A-1003"]["status"] == "delivered"

    # Asking for a person (whole word "agent") hands off with a model-written ticket summary.
    calls = shop.model_calls
    events = me.say("can I talk to an agent?")
    assert shop.model_calls == calls  # no model turn for an explicit request
    assert {"type": "status", "status": "waiting_human"} in [
        {k: e.get(k) for k in ("type", "status")} for e in events if e["type"] == "status"
    ]
    headers = console_login(client)
    queue = client.get("/v1/console/queue", headers=headers).json()
    [item] = queue
    assert item["conversation_id"] == me.id and item["status"] == "waiting_human"
    assert item["waiting_seconds"] >= 0 and item["last_message"] == "can I talk to an agent?"
    assert item["ticket"]["summary"].startswith("MODEL SUMMARY")
    assert shop.summary_calls == 1

    # While waiting, the customer's messages go to the console, not the model.
    me.say("hello? anyone?")
    assert shop.model_calls == calls

    # A human takes it and replies: the reply arrives on the customer's live event stream.
    after = me.transcript()["messages"][-1]["id"]
    found: list[dict[str, Any]] = []
    reader = threading.Thread(target=read_events, args=(server, me, after, 3, found))
    reader.start()
    assert client.post(f"/v1/console/conversations/{me.id}/take", headers=headers).json() == {
        "status": "with_human",
        "assigned_to": "alice",
    }
    r = client.post(
        f"/v1/console/conversations/{me.id}/reply",
        json={"text": "Hi, Alice here."},
        headers=headers,
    )
    assert r.status_code == 200
    reader.join(15)
    assert not reader.is_alive()
    human = [e for e in found if e["type"] == "message" and e["role"] == "human"]
    assert human and human[0]["text"] == "Hi, Alice here." and human[0]["agent"] == "alice"
    assert {"status": "with_human", "agent": "alice"}.items() <= found[0].items()
    assert me.transcript()["agent"] == "alice"
    assert [e["seq"] for e in found] == sorted(e["seq"] for e in found)
    assert all(e["seq"] > after for e in found)

    # Another agent cannot take a conversation that is being served.
    bob = console_login(client, "bob", "bob-pass")
    assert client.post(f"/v1/console/conversations/{me.id}/take", headers=bob).status_code == 409

    # Back to the bot: the model answers again, with the human's turn in its history.
    client.post(f"/v1/console/conversations/{me.id}/release", headers=headers)
    [back] = me.replies("thanks, and A-1002?")
    assert back["text"] == "Order A-1002 is processing."
    detail = client.get(f"/v1/console/conversations/{me.id}", headers=headers).json()
    assert detail["status"] == "bot" and detail["tags"]["handed_off"] is True
    roles = [m["role"] for m in detail["messages"]]
    assert roles.count("human") == 1 and "system" in roles

    # Close: status closed, then a new message reopens it with the bot.
    client.post(f"/v1/console/conversations/{me.id}/close", headers=headers)
    assert me.transcript()["status"] == "closed"
    [again] = me.replies("A-1004?")
    assert again["text"] == "Order A-1004 is processing." and me.transcript()["status"] == "bot"


def test_model_handoff_tool_and_repeated_failures(client: httpx.Client, shop: Shop) -> None:
    a = Customer(client)
    events = a.say("please escalate this")
    assert any(e["type"] == "status" and e["status"] == "waiting_human" for e in events)

    b = Customer(client)
    [sorry] = b.replies("silence")  # no answer once: asked to rephrase
    assert "rephrase" in sorry["text"]
    events = b.say("crash")  # an error on the next run: two failures in a row
    assert any(e["type"] == "status" and e["status"] == "waiting_human" for e in events)
    headers = console_login(client)
    tickets = {
        i["conversation_id"]: i["ticket"]
        for i in client.get("/v1/console/queue", headers=headers).json()
    }
    assert tickets[a.id]["trigger"] == "model_tool"
    assert tickets[b.id]["trigger"] == "failures"

    c = Customer(client)
    c.replies("silence")
    c.replies("A-1005")  # a good answer resets the count
    [again] = c.replies("silence")
    assert "rephrase" in again["text"] and c.transcript()["status"] == "bot"

    d = Customer(client)
    r = client.post(
        f"/v1/support/conversations/{d.id}/handoff", json={"reason": "button"}, headers=d.headers
    )
    assert r.json()["status"] == "waiting_human" and r.json()["ticket_id"]


def test_sensitive_topic_hands_off(client: httpx.Client, shop: Shop) -> None:
    me = Customer(client, locale="zh")
    events = me.say("我要投诉你们的快递")
    assert any(e["type"] == "status" and e["status"] == "waiting_human" for e in events)
    assert any(e.get("text") == "正在为您转接人工客服，请稍候。" for e in events)
    assert shop.model_calls == 0


def test_curated_answers_feedback_review_and_records(client: httpx.Client, shop: Shop) -> None:
    headers = console_login(client)
    r = client.post(
        "/v1/console/curated",
        json={
            "question": "What are your opening hours?",
            "answer": "9:00-21:00 every day.",
            "variants": ["客服几点上班", "when are you open"],
        },
        headers=headers,
    )
    assert r.status_code == 201
    me = Customer(client)
    [ans] = me.replies("What are your opening hours")
    assert (ans["source"], ans["text"]) == ("curated", "9:00-21:00 every day.")
    [zh] = me.replies("客服几点上班？")
    assert zh["source"] == "curated" and shop.model_calls == 0

    # Thumbs down on a model answer puts it in the review queue; promoting it makes it curated.
    [model] = me.replies("do you ship to Mars")
    assert model["source"] == "model" and shop.model_calls == 1
    fb = client.post(
        f"/v1/support/conversations/{me.id}/feedback",
        json={"message_id": model["id"], "rating": "down", "comment": "wrong"},
        headers=me.headers,
    )
    assert fb.status_code == 200
    client.post(
        f"/v1/support/conversations/{me.id}/feedback",
        json={"message_id": ans["id"], "rating": "up"},
        headers=me.headers,
    )
    review = client.get("/v1/console/review", headers=headers).json()
    down = next(i for i in review if i["kind"] == "thumbs_down")
    assert down["question"] == "do you ship to Mars" and down["comment"] == "wrong"
    promoted = client.post(
        f"/v1/console/review/{down['id']}/promote",
        json={"answer": "We ship within mainland China only."},
        headers=headers,
    ).json()
    [now] = me.replies("do you ship to Mars?")
    assert now == {**now, "source": "curated", "text": "We ship within mainland China only."}
    assert now["curated_id"] == promoted["curated_id"] and shop.model_calls == 1

    # Editing and deleting curated answers.
    cid = promoted["curated_id"]
    client.put(
        f"/v1/console/curated/{cid}",
        json={"question": "do you ship to Mars", "answer": "No."},
        headers=headers,
    )
    assert me.replies("do you ship to Mars")[0]["text"] == "No."
    assert client.delete(f"/v1/console/curated/{cid}", headers=headers).status_code == 200
    assert me.replies("do you ship to Mars")[0]["source"] == "model"

    # Tags, summary and exports.
    assert (
        client.patch(
            f"/v1/console/conversations/{me.id}/tags", json={"csat": 9}, headers=headers
        ).status_code
        == 400  # validation errors are 400 in OpenAI's error shape, app-wide
    )
    tags = client.patch(
        f"/v1/console/conversations/{me.id}/tags",
        json={"csat": 4, "resolution": "bot", "intent": "faq"},
        headers=headers,
    ).json()
    assert tags["csat"] == 4
    s = client.get("/v1/console/summary", headers=headers).json()
    assert s["conversations"] == 1 and s["curated_answers"] == 4 and s["bot_answers"] == 6
    assert s["curated_rate"] == round(4 / 6, 4) and s["csat_average"] == 4.0
    assert (s["thumbs_up"], s["thumbs_down"]) == (1, 1) and s["handoff_rate"] == 0.0
    jl = client.get("/v1/console/export?format=jsonl", headers=headers)
    [row] = [json.loads(line) for line in jl.text.splitlines()]
    assert row["conversation_id"] == me.id and row["tags"]["csat"] == 4
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/v1/console/export?format=csv", headers=headers).text)
        )
    )
    assert len(rows) == len(row["messages"]) and {r["csat"] for r in rows} == {"4"}
    assert client.get("/v1/console/export?format=xml", headers=headers).status_code == 400


def test_auth_errors(client: httpx.Client) -> None:
    me = Customer(client)
    assert client.get(f"/v1/support/conversations/{me.id}").status_code == 403
    assert (
        client.get(
            f"/v1/support/conversations/{me.id}", headers={"X-Customer-Token": "x"}
        ).status_code
        == 403
    )
    assert client.get(f"/v1/support/conversations/{me.id}?token={me.token}").status_code == 200
    assert client.get("/v1/support/conversations/nope", headers=me.headers).status_code == 404
    assert client.get("/v1/console/queue").status_code == 401
    assert (
        client.post("/v1/console/login", json={"username": "alice", "password": "bad"}).status_code
        == 401
    )
    assert (
        client.post("/v1/console/login", json={"username": "zed", "password": "bad"}).status_code
        == 401
    )
    r = client.post("/v1/console/login", json={"username": "alice", "password": "s3cret-pass"})
    assert "httponly" in r.headers["set-cookie"].lower()
    client.cookies.set("console_token", r.json()["token"])
    assert client.get("/v1/console/queue").status_code == 200


def test_console_event_feed_and_session_metadata(
    server: str, client: httpx.Client, bot: SupportBot
) -> None:
    headers = console_login(client)
    found: list[dict[str, Any]] = []

    def feed() -> None:
        with (
            httpx.Client(base_url=server, timeout=20) as c,
            c.stream("GET", "/v1/console/events", headers=headers) as r,
        ):
            buf = ""
            for chunk in r.iter_text():
                buf += chunk
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    found.extend(parse_sse(block + "\n\n"))
                if len(found) >= 2:
                    return

    reader = threading.Thread(target=feed)
    reader.start()
    time.sleep(0.3)  # the feed sends only events newer than its connection
    me = Customer(client)
    me.say("human")
    me.say("still there?")
    reader.join(15)
    assert not reader.is_alive()
    assert [e["type"] for e in found] == ["waiting", "customer_message"]
    assert all(e["conversation_id"] == me.id for e in found)
    assert found[1]["text"] == "still there?"
    session = asyncio.run(bot.store.load(bot.tenant, me.id))
    assert session is not None and session.metadata.status == "handed_off"
    client.post(f"/v1/console/conversations/{me.id}/close", headers=headers)
    session = asyncio.run(bot.store.load(bot.tenant, me.id))
    assert session is not None and session.metadata.status == "closed"


def test_handoff_while_a_confirmation_is_pending(client: httpx.Client, shop: Shop) -> None:
    me = Customer(client)
    [ask] = me.replies("return A-1001")
    assert [a["tool"] for a in ask["confirm"]] == ["return_order"]
    events = me.say("no, I want a human")
    assert any(e["type"] == "status" and e["status"] == "waiting_human" for e in events)
    assert shop.orders["A-1001"]["status"] == "delivered"
    client.post(f"/v1/console/conversations/{me.id}/release", headers=console_login(client))
    # The pending call was settled: the bot answers normally instead of asking again.
    [answer] = me.replies("A-1002?")
    assert answer["text"] == "Order A-1002 is processing."
    [answer] = me.replies("yes")
    assert answer["text"] == "echo: yes" and shop.orders["A-1001"]["status"] == "delivered"
