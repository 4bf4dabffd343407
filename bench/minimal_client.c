/* The least a Runtime API client can do, in C: keep-alive GET /next, POST the result.
 *
 * bench/run.py builds this to measure the stand-in's own ceiling. A client written in
 * Python costs about as much per event as the stand-in itself, so the ceiling it shows
 * would be the client's as much as the stand-in's.
 *
 * usage: minimal_client PORT EVENTS ECHO(0|1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char *buf;
static size_t cap, len;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void fill(int fd) {
    if (len == cap) {
        cap *= 2;
        buf = realloc(buf, cap);
        if (!buf) die("realloc");
    }
    ssize_t got = recv(fd, buf + len, cap - len, 0);
    if (got <= 0) die("recv");
    len += (size_t)got;
}

static void send_all(int fd, const char *data, size_t size) {
    while (size) {
        ssize_t sent = send(fd, data, size, 0);
        if (sent <= 0) die("send");
        data += sent;
        size -= (size_t)sent;
    }
}

/* Reads one response; its body is left at buf[*body, *body + *body_len). The request id
 * header's value, when present, is copied to id (at most id_size - 1 bytes). */
static void read_response(int fd, size_t *body, size_t *body_len, char *id, size_t id_size) {
    char *end;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) fill(fd);
    size_t head_len = (size_t)(end - buf) + 4;
    size_t content_length = 0;
    id[0] = 0;
    for (char *line = memchr(buf, '\n', head_len); line && line < end;
         line = memchr(line, '\n', (size_t)(end - line))) {
        line++;
        if (!strncasecmp(line, "content-length:", 15)) content_length = strtoul(line + 15, NULL, 10);
        if (!strncasecmp(line, "lambda-runtime-aws-request-id:", 30)) {
            char *value = line + 30;
            while (*value == ' ') value++;
            size_t value_len = strcspn(value, "\r");
            if (value_len >= id_size) die("request id too long");
            memcpy(id, value, value_len);
            id[value_len] = 0;
        }
    }
    while (len < head_len + content_length) fill(fd);
    *body = head_len;
    *body_len = content_length;
}

static void consume(size_t size) {
    memmove(buf, buf + size, len - size);
    len -= size;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT EVENTS ECHO\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long events = atol(argv[2]);
    int echo = atoi(argv[3]);
    cap = 1 << 16;
    buf = malloc(cap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static const char get[] = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n";
    char head[512], id[256];
    for (long n = 0; n < events; n++) {
        size_t body, body_len;
        send_all(fd, get, sizeof get - 1);
        read_response(fd, &body, &body_len, id, sizeof id);
        if (!id[0]) die("no request id");
        size_t payload_len = echo ? body_len : 4;
        int head_len = snprintf(head, sizeof head,
                                "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: api\r\n"
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                                id, payload_len);
        send_all(fd, head, (size_t)head_len);
        send_all(fd, echo ? buf + body : "null", payload_len);
        consume(body + body_len);
        read_response(fd, &body, &body_len, head, sizeof head);
        consume(body + body_len);
    }
    close(fd);
    return 0;
}
