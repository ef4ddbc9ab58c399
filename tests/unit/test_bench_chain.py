"""`make bench`'s chains: the bare chain on ghost-engine's transport, the stock one on kombu's own."""

from __future__ import annotations

import warnings

import bench_chain  # scripts/ is on the path (tests/conftest.py)

import pipeline


def test_the_stock_chain_rides_kombus_own_sqs_transport_and_the_bare_one_ghost_engines():
    ours, stock = bench_chain.make_app("ours"), bench_chain.make_app("stock", queue="bench-stock")
    assert ours.conf.broker_transport == "tasks.sqs_fanout:Transport"
    assert stock.conf.broker_transport == "sqs"
    # kombu's own SQS transport has no fanout exchanges for Celery's remote control.
    assert stock.conf.worker_enable_remote_control is False
    assert stock.conf.task_default_queue == "bench-stock"
    # The rest of the broker settings are the project's, for both.
    for setting in ("broker_transport_options", "task_acks_late", "worker_prefetch_multiplier", "broker_url"):
        assert stock.conf[setting] == ours.conf[setting], setting


def test_two_chains_in_one_process_keep_a_no_op_task_each():
    """The benchmark sends both kinds: each app's task is its own (a shared task would be registered
    to both apps and Celery would warn that the name is taken by another callable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Celery's DuplicateTaskNameWarning fails the test
        ours, stock = bench_chain.make_app("ours"), bench_chain.make_app("stock", queue="bench-stock")
        assert ours.tasks["bench.noop"] is not stock.tasks["bench.noop"]
    assert ours.tasks["bench.noop"].app is ours and stock.tasks["bench.noop"].app is stock
    assert len(pipeline.STEPS) == bench_chain.LENGTH
