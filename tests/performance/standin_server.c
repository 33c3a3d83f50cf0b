/*
 * A native stand-in for a vanilla Minecraft server, for the 500-servers-on-one-node benchmark
 * (tests/performance/test_node_scale.py). It is installed as `bin/java` of a fake Java home, so
 * the supervisor launches it exactly as it launches a JVM (`java -Xms.. -Xmx.. -jar server.jar
 * nogui`), confined and as the server's account, console on the FIFO, output to console.log.
 *
 * It speaks what the supervisor relies on, as tests/fake_server/FakeServer.java does:
 * - vanilla log lines: the start-up lines up to `Done (N.NNNs)! For help, type "help"`;
 *   the EULA refusal; FAILED TO BIND TO PORT;
 * - console commands: `list`, `say`, `stop` (the stopping lines, exit 0), `help`, and
 *   `fake:chatter MS` (a line every MS milliseconds; 0 = quiet), unknown ones answered as
 *   vanilla does; SIGTERM runs the stopping lines and exits 143 as a JVM's shutdown hook does;
 * - Server List Ping on server-port (server.properties): handshake, status request and
 *   response JSON, ping and pong.
 * One thread, one poll() loop, no allocation after start: 500 of them cost little.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define CLIENT_BUF 2048

struct client {
    int fd;
    int state; /* 0 handshake, 1 status */
    size_t len;
    unsigned char buf[CLIENT_BUF];
};

static int port = 25565, max_players = 20;
static char motd[256] = "A Minecraft Server";
static const char *version = "1.20.4";
static struct client clients[MAX_CLIENTS];
static volatile sig_atomic_t terminated = 0;
static char input[4096];
static size_t input_len = 0;
static long chatter_ms = 0;
static long chatter_count = 0;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void logline(const char *thread, const char *level, const char *fmt, ...) {
    char line[1024];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    int n = snprintf(line, sizeof line, "[%02d:%02d:%02d] [%s/%s]: ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, thread, level);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t off = 0; /* one write() per line: the log never holds half of one */
    while (off < n) {
        ssize_t w = write(STDOUT_FILENO, line + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += w;
    }
}

#define INFO(...) logline("Server thread", "INFO", __VA_ARGS__)
#define WARN(...) logline("Server thread", "WARN", __VA_ARGS__)

static void read_properties(void) {
    FILE *f = fopen("server.properties", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strncmp(line, "server-port=", 12)) port = atoi(line + 12);
        else if (!strncmp(line, "max-players=", 12)) max_players = atoi(line + 12);
        else if (!strncmp(line, "motd=", 5)) snprintf(motd, sizeof motd, "%.200s", line + 5);
    }
    fclose(f);
}

static int eula_accepted(void) {
    FILE *f = fopen("eula.txt", "r");
    if (!f) return 0;
    char line[256];
    int ok = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "eula=true", 9)) ok = 1;
    fclose(f);
    return ok;
}

static void stopping(void) {
    INFO("Stopping server");
    INFO("Saving players");
    INFO("Saving worlds");
    INFO("Saving chunks for level 'ServerLevel[world]'/minecraft:overworld");
    INFO("ThreadedAnvilChunkStorage (world): All chunks are saved");
    INFO("ThreadedAnvilChunkStorage: All dimensions are saved");
}

static void on_term(int sig) {
    (void)sig;
    terminated = 1;
}

/* ---- Server List Ping ------------------------------------------------------------------ */

static int read_varint(const unsigned char *p, size_t len, size_t *used, int *value) {
    int result = 0;
    for (size_t i = 0; i < 5; i++) {
        if (i >= len) return 0; /* incomplete */
        result |= (p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *used = i + 1;
            *value = result;
            return 1;
        }
    }
    return -1; /* too long */
}

static size_t put_varint(unsigned char *p, unsigned int value) {
    size_t n = 0;
    do {
        unsigned char byte = value & 0x7f;
        value >>= 7;
        if (value) byte |= 0x80;
        p[n++] = byte;
    } while (value);
    return n;
}

static void send_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= w;
    }
}

static void send_packet(int fd, int id, const unsigned char *data, size_t n) {
    unsigned char out[CLIENT_BUF + 16];
    unsigned char body[CLIENT_BUF + 8];
    size_t b = put_varint(body, id);
    memcpy(body + b, data, n);
    b += n;
    size_t o = put_varint(out, b);
    memcpy(out + o, body, b);
    send_all(fd, out, o + b);
}

static void close_client(struct client *c) {
    close(c->fd);
    c->fd = -1;
}

static void status_response(int fd) {
    char json[1024];
    int n = snprintf(json, sizeof json,
                     "{\"version\":{\"name\":\"%s\",\"protocol\":765},\"players\":{\"max\":%d,"
                     "\"online\":0,\"sample\":[]},\"description\":{\"text\":\"%s\"},"
                     "\"enforcesSecureChat\":false}",
                     version, max_players, motd);
    unsigned char data[1100];
    size_t d = put_varint(data, n);
    memcpy(data + d, json, n);
    send_packet(fd, 0, data, d + n);
}

/* Handles the complete packets in the client's buffer; returns 0 when it is to be closed. */
static int client_packets(struct client *c) {
    for (;;) {
        size_t used;
        int length = 0;
        int r = read_varint(c->buf, c->len, &used, &length);
        if (r < 0 || length < 0 || length > CLIENT_BUF - 8) return 0;
        if (r == 0 || c->len < used + (size_t)length) return 1;
        const unsigned char *p = c->buf + used;
        size_t idlen;
        int id;
        if (read_varint(p, length, &idlen, &id) != 1) return 0;
        const unsigned char *data = p + idlen;
        size_t n = length - idlen;
        if (c->state == 0 && id == 0) {
            size_t at = 0, u;
            int protocol, addrlen, next;
            if (read_varint(data, n, &u, &protocol) != 1) return 0;
            at += u;
            if (read_varint(data + at, n - at, &u, &addrlen) != 1) return 0;
            at += u + addrlen + 2; /* address, port */
            if (at >= n || read_varint(data + at, n - at, &u, &next) != 1) return 0;
            if (next != 1) return 0; /* a login: this stand-in takes no players */
            c->state = 1;
        } else if (c->state == 1 && id == 0) {
            status_response(c->fd);
        } else if (c->state == 1 && id == 1) {
            send_packet(c->fd, 1, data, n); /* pong: the same payload */
            return 0;
        } else {
            return 0;
        }
        size_t consumed = used + length;
        memmove(c->buf, c->buf + consumed, c->len - consumed);
        c->len -= consumed;
    }
}

/* ---- console ----------------------------------------------------------------------------- */

static int command(char *line) {
    line[strcspn(line, "\r")] = 0;
    while (*line == '/') line++;
    char *rest = strchr(line, ' ');
    if (rest) *rest++ = 0;
    else rest = line + strlen(line);
    if (!strcmp(line, "list")) {
        INFO("There are 0 of a max of %d players online: ", max_players);
    } else if (!strcmp(line, "say") && *rest) {
        INFO("[Server] %s", rest);
    } else if (!strcmp(line, "stop")) {
        INFO("Stopping the server");
        stopping();
        return 0;
    } else if (!strcmp(line, "help")) {
        INFO("/help [<command>]");
        INFO("/list [uuids]");
        INFO("/say <message>");
        INFO("/stop");
    } else if (!strcmp(line, "fake:chatter")) {
        chatter_ms = atol(rest);
        INFO("Fake: a line every %ld ms", chatter_ms);
    } else if (*line) {
        INFO("Unknown or incomplete command, see below for error");
        INFO("%s%s%s<--[HERE]", line, *rest ? " " : "", rest);
    }
    return 1;
}

/* Reads the console; returns 0 when `stop` was given. */
static int console_input(void) {
    ssize_t n = read(STDIN_FILENO, input + input_len, sizeof input - 1 - input_len);
    if (n <= 0) return 1; /* the FIFO is held open by the worker; EOF is not a stop */
    input_len += n;
    char *start = input, *nl;
    while ((nl = memchr(start, '\n', input + input_len - start))) {
        *nl = 0;
        if (!command(start)) return 0;
        start = nl + 1;
    }
    input_len -= start - input;
    memmove(input, start, input_len);
    if (input_len == sizeof input - 1) input_len = 0; /* an overlong line is dropped */
    return 1;
}

int main(void) {
    double started = now_s();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    read_properties();
    INFO("Starting minecraft server version %s", version);
    if (!eula_accepted()) {
        logline("ServerMain", "INFO",
                "You need to agree to the EULA in order to run the server. Go to eula.txt for "
                "more info.");
        return 0;
    }
    INFO("Loading properties");
    INFO("Default game type: SURVIVAL");
    INFO("Generating keypair");
    INFO("Starting Minecraft server on *:%d", port);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 16) < 0) {
        WARN("**** FAILED TO BIND TO PORT!");
        WARN("The exception was: java.net.BindException: Address already in use");
        WARN("Perhaps a server is already running on that port?");
        return 1;
    }
    INFO("Preparing level \"world\"");
    INFO("Preparing start region for dimension minecraft:overworld");
    INFO("Time elapsed: 1 ms");
    INFO("Done (%.3fs)! For help, type \"help\"", now_s() - started);
    for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
    double next_chatter = 0;
    fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    for (;;) {
        if (terminated) {
            stopping();
            return 143;
        }
        struct pollfd fds[2 + MAX_CLIENTS];
        int map[2 + MAX_CLIENTS];
        int nfds = 0;
        fds[nfds].fd = STDIN_FILENO;
        fds[nfds++].events = POLLIN;
        fds[nfds].fd = listener;
        fds[nfds++].events = POLLIN;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (clients[i].fd >= 0) {
                map[nfds] = i;
                fds[nfds].fd = clients[i].fd;
                fds[nfds++].events = POLLIN;
            }
        }
        int timeout = -1;
        if (chatter_ms > 0) {
            double now = now_s();
            if (next_chatter == 0) next_chatter = now + chatter_ms / 1000.0;
            if (now >= next_chatter) {
                INFO("Fake chatter %ld", ++chatter_count);
                next_chatter += chatter_ms / 1000.0;
                if (next_chatter < now) next_chatter = now + chatter_ms / 1000.0;
            }
            timeout = (int)((next_chatter - now) * 1000) + 1;
            if (timeout < 0) timeout = 0;
        } else {
            next_chatter = 0;
        }
        int ready = poll(fds, nfds, timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            return 2;
        }
        if (fds[0].revents & POLLIN) {
            if (!console_input()) return 0;
        }
        if (fds[1].revents & POLLIN) {
            int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CLIENTS; i++)
                    if (clients[i].fd < 0) {
                        slot = i;
                        break;
                    }
                if (slot < 0) {
                    close(fd);
                } else {
                    clients[slot].fd = fd;
                    clients[slot].state = 0;
                    clients[slot].len = 0;
                }
            }
        }
        for (int k = 2; k < nfds; k++) {
            if (!fds[k].revents) continue;
            struct client *c = &clients[map[k]];
            if (c->fd < 0) continue;
            ssize_t n = recv(c->fd, c->buf + c->len, CLIENT_BUF - c->len, 0);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close_client(c);
                continue;
            }
            c->len += n;
            if (!client_packets(c)) close_client(c);
        }
    }
}
