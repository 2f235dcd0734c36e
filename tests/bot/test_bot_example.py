"""examples/customer-service: the Bamboo Lane bot from its agent.yaml, through the HTTP API."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bot_harness import Customer, console_login, live_server

from glm_agent.retrieval import KnowledgeBase
from glm_agent.serving.bot import SupportBot, create_bot_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "customer-service"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SupportBot, Path]]:
    folder = tmp_path_factory.mktemp("cs") / "customer-service"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".glm-agent", "__pycache__"))
    # The test embedder (hashing, no model files) instead of the bundled MiniLM, for speed.
    KnowledgeBase(folder / ".glm-agent" / "kb", embedder="test").close()
    mp = pytest.MonkeyPatch()
    mp.setenv("CS_STORE_DB", str(folder / ".glm-agent" / "store.db"))
    mp.delenv("SUPPORT_SESSIONS_URL", raising=False)
    try:
        yield SupportBot.from_yaml(folder / "agent.yaml"), folder
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def client(example: tuple[SupportBot, Path]) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(example[0], heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        yield c


def test_seed_is_deterministic(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("cs_seed", EXAMPLE / "seed.py")
    assert spec is not None and spec.loader is not None
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    dumps = []
    for name in ("a.db", "b.db"):
        db = sqlite3.connect(seed.create(tmp_path / name))
        dumps.append(list(db.iterdump()))
        counts = [
            db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("customers", "products", "orders")
        ]
        db.close()
    assert dumps[0] == dumps[1] and counts == [20, 12, 60]


def test_example_pdf_is_committed_and_ingested(example: tuple[SupportBot, Path]) -> None:
    bot, _ = example
    assert (EXAMPLE / "knowledge" / "warranty-guide.pdf").stat().st_size > 1000
    sources = {
        Path(h.citation.source).name for h in bot.agent.knowledge.search("warranty cast iron", k=10)
    }
    assert "warranty-guide.pdf" in sources
    assert {"returns-policy.zh.md", "shipping-faq.en.md"} <= {
        Path(s).name for s in bot.agent.knowledge.file_hashes()
    }


def test_example_dialogue(client: httpx.Client, example: tuple[SupportBot, Path]) -> None:
    me = Customer(client, locale=None)
    assert "竹巷" in me.greeting
    [curated] = me.replies("运费怎么算？")
    assert curated["source"] == "curated" and "99" in curated["text"]

    # No customer data before the customer is verified (order number + phone on the account).
    [ask] = me.replies("我的订单 SO10001 到哪了")
    assert "手机号或邮箱" in ask["text"] and "Huaihai" not in ask["text"]
    [order] = me.replies("SO10001 13439196312")
    assert order["text"].startswith("订单 SO10001 的状态是「待发货」")
    assert "Huaihai" in order["text"]

    [confirm] = me.replies("帮我取消订单 SO10001")
    assert confirm["text"] == "请确认：取消订单 SO10001。回复“确认”继续，回复“取消”则不办理。"
    [done] = me.replies("确认")
    assert done["text"] == "订单 SO10001 已取消，268 元将在3个工作日内原路退回。"
    _, folder = example
    db = sqlite3.connect(folder / ".glm-agent" / "store.db")
    assert db.execute("SELECT status FROM orders WHERE id='SO10001'").fetchone() == ("cancelled",)
    [status] = me.replies("它现在什么状态？")  # the order in question is carried over
    assert "SO10001" in status["text"] and "已取消" in status["text"]
    # Another customer's order looks like one that does not exist, and stays untouched.
    [other] = me.replies("取消订单 SO10002")
    assert other["text"] == "在您的账户下没有找到订单 SO10002，请核对订单号。"
    assert db.execute("SELECT status FROM orders WHERE id='SO10002'").fetchone() == ("processing",)

    [kb] = me.replies("What is the warranty on cast iron pots?")
    assert "five-year" in kb["text"] and kb["source"] == "model"
    assert kb["text"].endswith("[1]") and kb["text"][:-4].rstrip().endswith(".")
    assert kb["citations"] and kb["citations"][0]["source"] == "warranty-guide.pdf"
    [hello] = me.replies("谢谢")
    assert hello["text"].startswith("不客气")

    events = me.say("转人工")
    assert any(e["type"] == "status" and e["status"] == "waiting_human" for e in events)
    headers = console_login(client, "agent", "agent-password")
    [item] = client.get("/v1/console/queue", headers=headers).json()
    summary = item["ticket"]["summary"]
    assert "SO10001" in summary and "转人工" in summary  # extractive (offline model)
    assert "13439196312" not in summary  # the phone number is redacted everywhere


def test_example_webhook_channel_needs_a_real_secret(client: httpx.Client, tmp_path: Path) -> None:
    # Off until configured, and never with a placeholder secret anyone could sign with.
    r = client.post("/v1/channels/webhook", json={"event_id": "1", "text": "hi"})
    assert r.status_code == 404
    from glm_agent.serving.bot import WebhookConfig

    with pytest.raises(ValueError, match="placeholder"):
        WebhookConfig(secret="change-me" + " " * 8)
    with pytest.raises(ValueError, match="at least 16 characters"):
        WebhookConfig(secret="short")


def test_bad_support_yaml_names_the_file_and_key(tmp_path: Path) -> None:
    from glm_agent.exceptions import ConfigError

    (tmp_path / "agent.yaml").write_text("name: x\nmodel: test\nmemory: none\n", encoding="utf-8")
    (tmp_path / "support.yaml").write_text("handoff: {max_failures: 0}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        SupportBot.from_yaml(tmp_path / "agent.yaml")
    assert "support.yaml" in str(e.value) and "handoff.max_failures" in str(e.value)
    (tmp_path / "support.yaml").write_text("tenant: t1\n", encoding="utf-8")
    bot = SupportBot.from_yaml(tmp_path / "agent.yaml")
    assert bot.tenant == "t1" and (tmp_path / ".glm-agent" / "support.db").exists()
