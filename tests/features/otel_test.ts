/**
 * The README's OpenTelemetry recipe (issue 19): the observer turned into
 * spans with Dalli's attribute names, parented to the caller's active span,
 * exported to the SDK's in-memory exporter. OpenTelemetry is a
 * devDependency only: the package itself imports none of it.
 */
import assert from "node:assert/strict";
import { context, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { describe, it } from "../_support/_harness.ts";
import { Client, HashClient, MemcacheTimeoutError, type Observer } from "../../mod.ts";
import { startFakeServer, startMemcached } from "../_support/_memcached.ts";

// ---- the recipe, as the README shows it

/** An observer making a CLIENT span per command, child of the caller's active span. */
function tracing(tracer: Tracer): Observer<Span> {
  return {
    onCommandStart(event) {
      const at = event.server.lastIndexOf(":");
      const port = at > 0 ? Number(event.server.slice(at + 1)) : NaN;
      return tracer.startSpan(event.command, {
        kind: SpanKind.CLIENT,
        attributes: {
          "db.system.name": "memcached",
          "db.operation.name": event.command,
          "server.address": Number.isInteger(port) ? event.server.slice(0, at).replace(/^\[|\]$/g, "") : event.server,
          ...(Number.isInteger(port) ? { "server.port": port } : {}),
          "db.memcached.key_count": event.keys,
        },
      });
    },
    onCommand(event, span) {
      if (span === undefined) return;
      span.setAttributes({ "db.memcached.hit_count": event.hits, "db.memcached.miss_count": event.misses });
      if (event.error !== undefined) {
        const error = event.error instanceof Error ? event.error : new Error(String(event.error));
        span.recordException(error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      }
      span.end();
    },
  };
}

// ---- the test

/** A tracer exporting to memory, with async context (AsyncLocalStorage) for the test's duration. */
function setup() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  return {
    exporter,
    tracer: provider.getTracer("memkit-test"),
    async [Symbol.asyncDispose]() {
      context.disable();
      // Each export finishes on a timer of the exporter's (InMemorySpanExporter
      // answers in a setTimeout), and shutdown() does not wait for exports in
      // flight: a span ended just before (or while the clients close) would
      // leave that timer running past the test. forceFlush waits for them.
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}

/** The parent span id of an exported span (SDK 2: parentSpanContext; SDK 1: parentSpanId). */
function parentOf(span: object): string | undefined {
  const s = span as { parentSpanContext?: { spanId: string }; parentSpanId?: string };
  return s.parentSpanContext?.spanId ?? s.parentSpanId;
}

describe("OpenTelemetry recipe", () => {
  it("spans carry Dalli's attributes and are children of the caller's active span", async () => {
    await using otel = setup();
    await using server = await startMemcached();
    await using client = new Client(server.spec, { observer: tracing(otel.tracer) });
    const parent = otel.tracer.startSpan("handle request");
    await context.with(trace.setSpan(context.active(), parent), async () => {
      await client.set("a", "1", { noreply: false });
      assert.equal(await client.get("a"), "1");
      await client.getMany(["a", "b", "c"]);
    });
    parent.end();
    const spans = otel.exporter.getFinishedSpans().filter((s) => s.name !== "handle request");
    assert.deepEqual(spans.map((s) => s.name), ["set", "get", "getMany"]);
    for (const span of spans) {
      assert.equal(span.kind, SpanKind.CLIENT);
      assert.equal(parentOf(span), parent.spanContext().spanId);
      assert.equal(span.spanContext().traceId, parent.spanContext().traceId);
      assert.equal(span.attributes["db.system.name"], "memcached");
      assert.equal(span.attributes["db.operation.name"], span.name);
      assert.equal(span.attributes["server.address"], server.host);
      assert.equal(span.attributes["server.port"], server.port);
      assert.equal(span.status.code, SpanStatusCode.UNSET);
    }
    const counts = spans.map((s) => [
      s.attributes["db.memcached.key_count"],
      s.attributes["db.memcached.hit_count"],
      s.attributes["db.memcached.miss_count"],
    ]);
    assert.deepEqual(counts, [[1, 0, 0], [1, 1, 0], [3, 1, 2]]);
  });

  it("a call outside any span is a root span; a failed call's span has the error", async () => {
    await using otel = setup();
    await using fake = await startFakeServer(); // never answers
    await using client = new Client(fake.spec, { observer: tracing(otel.tracer), timeout: 100 });
    await assert.rejects(client.get("k"), MemcacheTimeoutError);
    const [span] = otel.exporter.getFinishedSpans();
    assert.equal(span.name, "get");
    assert.equal(parentOf(span), undefined);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.match(span.status.message ?? "", /Timed out/);
    assert.equal(span.events[0]?.name, "exception");
  });

  it("a HashClient call split over servers makes a span per server, each under the caller's", async () => {
    await using otel = setup();
    await using a = await startMemcached();
    await using b = await startMemcached();
    await using client = new HashClient([a.spec, b.spec], { observer: tracing(otel.tracer) });
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const parent = otel.tracer.startSpan("batch");
    await context.with(trace.setSpan(context.active(), parent), () => client.getMany(keys));
    parent.end();
    const spans = otel.exporter.getFinishedSpans().filter((s) => s.name === "getMany");
    assert.equal(spans.length, 2);
    assert.deepEqual(spans.map((s) => s.attributes["server.port"]).sort(), [a.port, b.port].sort());
    assert.equal(spans.reduce((n, s) => n + Number(s.attributes["db.memcached.key_count"]), 0), 20);
    assert.equal(spans.reduce((n, s) => n + Number(s.attributes["db.memcached.miss_count"]), 0), 20);
    assert.ok(spans.every((s) => parentOf(s) === parent.spanContext().spanId));
  });
});
