/* zdtm-style workloads for checkpoint/recovery and migration tests (CRIU's
 * zdtm idea): each mode sets up state, prints "ready", keeps working, and
 * on SIGUSR2 checks its own state and prints PASS or FAIL (exit 0 or 1).
 *   alarm    SIGALRM from setitimer with an SA_SIGINFO handler; ticks go on
 *   reader   a file read halfway; the rest must follow at the right offset
 *   array    MIB MiB of pseudo-random data with a checksum
 *   text     MIB MiB of numbered text lines (compressible) with a checksum
 *   shared   numbered lines to stdout and stderr alternately (>f 2>&1)
 *   stdin    blocked reading stdin; the line that comes must be "go"
 *   recurse  on SIGUSR2, recursion 40,000 calls deep (the stack grows by MiBs)
 *   stamp    every 50 ms appends "PID N" to PATH (open, write, close), so
 *            that whoever shares PATH sees which copy ran when
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t done, ticks, bad_info;

static void on_usr2(int s) { (void)s; done = 1; }
static void on_alrm(int s, siginfo_t *si, void *uc) {
  (void)uc;
  if (s != SIGALRM || si->si_signo != SIGALRM) bad_info = 1;
  ticks++;
}

static void nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int mode_alarm(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_alrm;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 100000}, {0, 100000}};
  setitimer(ITIMER_REAL, &it, NULL);
  printf("ready\n");
  fflush(stdout);
  int last = -1;
  while (!done) {
    pause();
    if (ticks != last) {
      last = ticks;
      printf("tick %d\n", last);
      fflush(stdout);
    }
  }
  return !bad_info && ticks > 0;
}

static int mode_reader(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  unsigned char b[4096];
  off_t half = lseek(fd, 0, SEEK_END) / 2;
  lseek(fd, 0, SEEK_SET);
  for (off_t at = 0; at < half; at += (off_t)sizeof b)
    if (read(fd, b, sizeof b) != (ssize_t)sizeof b) return 0;
  printf("ready\n");
  fflush(stdout);
  while (!done) nap(50);
  off_t at = lseek(fd, 0, SEEK_CUR);
  if (at != half) return 0;
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) {
    for (ssize_t i = 0; i < n; ++i)
      if (b[i] != (unsigned char)((at + i) * 131 % 251)) return 0;
    at += n;
  }
  return at == 2 * half;
}

static int mode_array(long mib) {
  size_t words = (size_t)mib << 17;
  uint64_t *a = malloc(words * 8), s = 88172645463325252ull, sum = 0;
  if (!a) return 0;
  for (size_t i = 0; i < words; ++i) sum += (a[i] = xorshift(&s)) * (i | 1);
  printf("ready\n");
  fflush(stdout);
  while (!done) nap(50);
  uint64_t again = 0;
  for (size_t i = 0; i < words; ++i) again += a[i] * (i | 1);
  return again == sum;
}

static int mode_text(long mib) {
  size_t len = (size_t)mib << 20;
  char *a = malloc(len);
  if (!a) return 0;
  uint64_t sum = 0;
  for (size_t at = 0, n = 0; at < len; ++n) {
    char line[96];
    int k = snprintf(line, sizeof line, "line %zu: the quick brown fox jumps over the lazy dog %zu\n", n, n * 7);
    for (int i = 0; i < k && at < len; ++i) a[at++] = line[i];
  }
  for (size_t i = 0; i < len; ++i) sum += (uint64_t)(unsigned char)a[i] * (i | 1);
  printf("ready\n");
  fflush(stdout);
  while (!done) nap(50);
  uint64_t again = 0;
  for (size_t i = 0; i < len; ++i) again += (uint64_t)(unsigned char)a[i] * (i | 1);
  return again == sum;
}

static int mode_shared(void) {
  printf("ready\n");
  fflush(stdout);
  for (int i = 0; !done; ++i) {
    dprintf(i % 2 ? 2 : 1, "line %d\n", i);
    nap(20);
  }
  return 1;
}

static int mode_stdin(void) {
  printf("ready\n");
  fflush(stdout);
  char line[64] = {0};
  if (!fgets(line, sizeof line, stdin)) return 0;  /* frozen in read(0) */
  return strcmp(line, "go\n") == 0;
}

static long deep(long n, volatile char *prev) {
  volatile char frame[64];
  frame[0] = (char)n;
  if (n == 0) return prev != 0;
  return deep(n - 1, frame) + (frame[0] == (char)n);
}

static int mode_stamp(const char *path) {
  printf("ready\n");
  fflush(stdout);
  for (long n = 0; !done; ++n) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return 0;
    dprintf(fd, "%d %ld\n", (int)getpid(), n);
    close(fd);
    nap(50);
  }
  return 1;
}

static int mode_recurse(void) {
  printf("ready\n");
  fflush(stdout);
  while (!done) nap(50);
  return deep(40000, 0) == 40001;
}

int main(int argc, char **argv) {
  signal(SIGUSR2, on_usr2);
  if (argc < 2) return 2;
  int ok = !strcmp(argv[1], "alarm")    ? mode_alarm()
           : !strcmp(argv[1], "reader") ? mode_reader(argv[2])
           : !strcmp(argv[1], "array")  ? mode_array(atol(argv[2]))
           : !strcmp(argv[1], "text")   ? mode_text(atol(argv[2]))
           : !strcmp(argv[1], "shared") ? mode_shared()
           : !strcmp(argv[1], "stdin")  ? mode_stdin()
           : !strcmp(argv[1], "recurse") ? mode_recurse()
           : !strcmp(argv[1], "stamp")  ? mode_stamp(argv[2])
                                        : 0;
  printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
