/* crcsum: prints the CRC-32 and size of each file, like cksum -a crc32b. */
#include <stdio.h>

#include "crc32.h"

int main(int argc, char **argv) {
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      perror(argv[i]);
      rc = 1;
      continue;
    }
    unsigned char buf[65536];
    size_t n, total = 0;
    uint32_t crc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
      crc = crc32_update(crc, buf, n);
      total += n;
    }
    fclose(f);
    printf("%08x %zu %s\n", crc, total, argv[i]);
  }
  return rc;
}
