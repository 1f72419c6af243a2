/*
 * Prints where libmemcached places keys with weighted ketama
 * (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: md5, 160 points per server).
 *
 *   ketama_table <server>... < keys
 *
 * A server is "host:port" or a unix socket path ("/..."); keys are read
 * one per line from stdin, and for each the 0-based position of its server
 * in the argument list is printed on its own line. Nothing connects to the
 * servers. Built and run only by tests/tools/gen_ketama_table.ts, which
 * writes tests/data/ketama_libmemcached.json; the tests read that table.
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  memcached_st *memc = memcached_create(NULL);
  if (memc == NULL) return 1;
  for (int i = 1; i < argc; i++) {
    memcached_return_t rc;
    if (argv[i][0] == '/') {
      rc = memcached_server_add_unix_socket(memc, argv[i]);
    } else {
      char *colon = strrchr(argv[i], ':');
      if (colon == NULL) return 2;
      *colon = '\0';
      rc = memcached_server_add(memc, argv[i], (in_port_t) atoi(colon + 1));
    }
    if (rc != MEMCACHED_SUCCESS) {
      fprintf(stderr, "server %s: %s\n", argv[i], memcached_strerror(memc, rc));
      return 3;
    }
  }
  if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) != MEMCACHED_SUCCESS) return 4;
  if (memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED) != 1) return 5;

  char line[4096];
  while (fgets(line, sizeof line, stdin) != NULL) {
    size_t length = strcspn(line, "\n");
    line[length] = '\0';
    printf("%u\n", memcached_generate_hash(memc, line, length));
  }
  memcached_free(memc);
  return 0;
}
