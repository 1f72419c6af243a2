/**
 * `stats` of `MemoryServer`: memcached 1.6.18's general stats, in its order
 * and under its names, with the counters _memory_store.ts keeps; what has no
 * meaning without memcached's threads and slabs is reported as memcached
 * reports an idle instance (0, or its default setting). Also `stats
 * settings`, `items`, `slabs`, `sizes`, `reset` and `detail on|off`.
 *
 * @module
 */
import type { Session } from "./_types.ts";

const line = (name: string, value: string | number) => `STAT ${name} ${value}\r\n`;

function general(s: Session): string {
  const store = s.store;
  const c = store.counters;
  const now = store.unixNow();
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 1;
  const uptime = now - (s.hooks.startedAt ?? store.processStarted + 62) + 2;
  const stats: [string, string | number][] = [
    ["pid", pid],
    ["uptime", uptime],
    ["time", now],
    ["version", "1.6.18"],
    ["libevent", "none (memkit MemoryServer)"],
    ["pointer_size", 64],
    ["rusage_user", "0.000000"],
    ["rusage_system", "0.000000"],
    ["max_connections", store.maxConnections],
    ["curr_connections", store.currConnections],
    ["total_connections", c.total_connections],
    ["rejected_connections", c.rejected_connections],
    ["connection_structures", store.currConnections + 1],
    ["response_obj_oom", 0],
    ["response_obj_count", 1],
    ["response_obj_bytes", 16384],
    ["read_buf_count", 8],
    ["read_buf_bytes", 131072],
    ["read_buf_bytes_free", 0],
    ["read_buf_oom", 0],
    ["reserved_fds", 5],
    ["cmd_get", c.cmd_get],
    ["cmd_set", c.cmd_set],
    ["cmd_flush", c.cmd_flush],
    ["cmd_touch", c.cmd_touch],
    ["cmd_meta", c.cmd_meta],
    ["get_hits", c.get_hits],
    ["get_misses", c.get_misses],
    ["get_expired", c.get_expired],
    ["get_flushed", c.get_flushed],
    ["delete_misses", c.delete_misses],
    ["delete_hits", c.delete_hits],
    ["incr_misses", c.incr_misses],
    ["incr_hits", c.incr_hits],
    ["decr_misses", c.decr_misses],
    ["decr_hits", c.decr_hits],
    ["cas_misses", c.cas_misses],
    ["cas_hits", c.cas_hits],
    ["cas_badval", c.cas_badval],
    ["touch_hits", c.touch_hits],
    ["touch_misses", c.touch_misses],
    ["store_too_large", c.store_too_large],
    ["store_no_memory", c.store_no_memory],
    ["auth_cmds", c.auth_cmds],
    ["auth_errors", c.auth_errors],
    ["bytes_read", c.bytes_read],
    ["bytes_written", c.bytes_written],
    ["limit_maxbytes", store.maxBytes],
    ["accepting_conns", 1],
    ["listen_disabled_num", 0],
    ["time_in_listen_disabled_us", 0],
    ["threads", 1],
    ["conn_yields", 0],
    ["hash_power_level", 16],
    ["hash_bytes", 524288],
    ["hash_is_expanding", 0],
    ["slab_reassign_rescues", 0],
    ["slab_reassign_chunk_rescues", 0],
    ["slab_reassign_evictions_nomem", 0],
    ["slab_reassign_inline_reclaim", 0],
    ["slab_reassign_busy_items", 0],
    ["slab_reassign_busy_deletes", 0],
    ["slab_reassign_running", 0],
    ["slabs_moved", 0],
    ["lru_crawler_running", 0],
    ["lru_crawler_starts", 0],
    ["lru_maintainer_juggles", 0],
    ["malloc_fails", 0],
    ["log_worker_dropped", 0],
    ["log_worker_written", 0],
    ["log_watcher_skipped", 0],
    ["log_watcher_sent", 0],
    ["log_watchers", 0],
    ["unexpected_napi_ids", 0],
    ["round_robin_fallback", 0],
    ["bytes", store.bytes],
    ["curr_items", store.items.size],
    ["total_items", c.total_items],
    ["slab_global_page_pool", 0],
    ["expired_unfetched", c.expired_unfetched],
    ["evicted_unfetched", c.evicted_unfetched],
    ["evicted_active", 0],
    ["evictions", c.evictions],
    ["reclaimed", c.reclaimed],
    ["crawler_reclaimed", 0],
    ["crawler_items_checked", 0],
    ["lrutail_reflocked", 0],
    ["moves_to_cold", 0],
    ["moves_to_warm", 0],
    ["moves_within_lru", 0],
    ["direct_reclaims", 0],
    ["lru_bumps_dropped", 0],
  ];
  return stats.map(([name, value]) => line(name, value)).join("");
}

function settings(s: Session): string {
  const store = s.store;
  const port = s.hooks.port ?? 0;
  const stats: [string, string | number][] = [
    ["maxbytes", store.maxBytes],
    ["maxconns", s.store.maxConnections],
    ["tcpport", port],
    ["udpport", 0],
    ["inter", port ? "127.0.0.1" : "NULL"],
    ["verbosity", store.verbosity],
    ["oldest", 0],
    ["evictions", "on"],
    ["domain_socket", "NULL"],
    ["umask", 700],
    ["shutdown_command", "no"],
    ["growth_factor", "1.25"],
    ["chunk_size", 48],
    ["num_threads", 1],
    ["num_threads_per_udp", 1],
    ["stat_key_prefix", ":"],
    ["detail_enabled", "no"],
    ["reqs_per_event", 20],
    ["cas_enabled", "yes"],
    ["tcp_backlog", 1024],
    ["binding_protocol", "ascii"],
    ["auth_enabled_sasl", "no"],
    ["auth_enabled_ascii", "no"],
    ["item_size_max", store.itemSizeMax],
    ["maxconns_fast", "yes"],
    ["hashpower_init", 0],
    ["slab_reassign", "no"],
    ["slab_automove", 0],
    ["lru_crawler", "no"],
    ["tail_repair_time", 0],
    ["flush_enabled", "yes"],
    ["dump_enabled", "no"],
    ["hash_algorithm", "none"],
    ["lru_maintainer_thread", "no"],
    ["lru_segmented", "no"],
    ["temp_lru", "no"],
    ["idle_timeout", 0],
    ["track_sizes", "no"],
    ["inline_ascii_response", "no"],
    ["ssl_enabled", "no"],
  ];
  return stats.map(([name, value]) => line(name, value)).join("");
}

function items(s: Session): string {
  const store = s.store;
  if (store.items.size === 0) return "";
  const oldest = store.items.values().next().value!;
  return line("items:1:number", store.items.size) + line("items:1:age", store.now() - oldest.time) +
    line("items:1:mem_requested", store.bytes) + line("items:1:evicted", store.counters.evictions) +
    line("items:1:reclaimed", store.counters.reclaimed);
}

function slabs(s: Session): string {
  const store = s.store;
  return (store.items.size ? line("1:used_chunks", store.items.size) + line("1:cmd_set", store.counters.cmd_set) : "") +
    line("active_slabs", store.items.size ? 1 : 0) + line("total_malloced", store.bytes);
}

/** Answers `stats [argument]`. */
export function stats(s: Session, tokens: string[]): void {
  const sub = tokens[1];
  const out = s.out;
  if (tokens.length === 1) return out.text(general(s) + "END\r\n");
  switch (sub) {
    case "reset":
      s.store.resetCounters();
      return s.reply("RESET");
    case "detail":
      if (tokens[2] === "on" || tokens[2] === "off") return s.reply("OK");
      if (tokens[2] === "dump") return out.text("END\r\n");
      return s.reply("CLIENT_ERROR usage: stats detail on|off|dump");
    case "settings":
      return out.text(settings(s) + "END\r\n");
    case "items":
      return out.text(items(s) + "END\r\n");
    case "slabs":
      return out.text(slabs(s) + "END\r\n");
    case "sizes":
      return out.text(line("sizes_status", "disabled") + "END\r\n");
    case "conns":
      return out.text("END\r\n");
    default:
      return s.reply("ERROR");
  }
}
