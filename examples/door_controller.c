/*
 * A door controller for facecaptured, in C with sd-bus (libsystemd).
 *
 * Asks the daemon to authenticate a person over D-Bus, shows the capture feedback
 * and progress as they arrive, and drives a relay stand-in on the result: the file
 * given with --relay gets "1" (door open) when access is granted, "0" otherwise,
 * as a GPIO value file would.
 *
 *   cc -o door_controller examples/door_controller.c $(pkg-config --cflags --libs libsystemd)
 *   ./door_controller alice --relay /tmp/door-relay
 *   ./door_controller alice --address unix:path=/run/test-bus
 *
 * Exit status: 0 granted, 1 refused or failed, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#define SERVICE "org.facecapture.FaceCapture1"
#define PATH "/org/facecapture/FaceCapture1"
#define INTERFACE "org.facecapture.FaceCapture1"
/* Longer than the daemon's own operation timeout (20 s by default). */
#define CALL_TIMEOUT_USEC (60ULL * 1000 * 1000)

struct reply {
    bool done;
    bool granted;
};

/* What a door display should say for each CaptureFeedback code (the interface
 * XML's table). Left and right are the camera's: the person moves the other way. */
static const char *advice(const char *code) {
    static const char *const table[][2] = {
        {"face-compliant", "Hold still"},
        {"no-face", "Look at the camera"},
        {"multiple-faces", "Only one person in front of the camera, please"},
        {"face-too-far", "Come closer"},
        {"face-too-close", "Step back a little"},
        {"face-on-left", "Move a little to your left"},
        {"face-on-right", "Move a little to your right"},
        {"face-too-high", "Lower your head a little"},
        {"face-too-low", "Raise your head a little"},
        {"too-dark", "Face the light, or move somewhere brighter"},
        {"too-blurry", "Hold still"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(code, table[i][0]) == 0)
            return table[i][1];
    return "Look at the camera"; /* a code from a newer daemon */
}

static int on_feedback(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    const char *code;
    (void)userdata;
    (void)error;
    if (sd_bus_message_read(m, "s", &code) >= 0) {
        printf("feedback: %s -> display: %s\n", code, advice(code));
        fflush(stdout);
    }
    return 0;
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    const char *operation, *step;
    (void)userdata;
    (void)error;
    if (sd_bus_message_read(m, "ss", &operation, &step) >= 0) {
        printf("progress: %s %s\n", operation, step);
        fflush(stdout);
    }
    return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
    struct reply *r = userdata;
    const sd_bus_error *e = sd_bus_message_get_error(m);
    int granted, liveness, matched, status;
    double score;
    (void)ret_error;
    r->done = true;
    if (e) {
        /* The daemon's errors are org.facecapture.FaceCapture1.Error.NAME. */
        const char *prefix = INTERFACE ".Error.";
        const char *name = e->name;
        if (strncmp(name, prefix, strlen(prefix)) == 0)
            printf("refused: %s: %s\n", name + strlen(prefix), e->message ? e->message : "");
        else
            printf("failed: %s: %s\n", name, e->message ? e->message : "");
        return 0;
    }
    if (sd_bus_message_read(m, "bbbdi", &granted, &liveness, &matched, &score, &status) < 0) {
        printf("failed: the reply is not (bbbdi)\n");
        return 0;
    }
    r->granted = granted;
    printf("granted=%s liveness=%s matched=%s score=%g status=%d\n", granted ? "true" : "false",
           liveness ? "true" : "false", matched ? "true" : "false", score, status);
    return 0;
}

static int set_relay(const char *path, bool open) {
    if (path) {
        FILE *f = fopen(path, "w");
        if (!f || fputs(open ? "1\n" : "0\n", f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "cannot drive the relay %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    printf("relay: %s\n", open ? "OPEN" : "closed");
    return 0;
}

int main(int argc, char **argv) {
    const char *username = NULL, *address = NULL, *relay = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--address") == 0 && i + 1 < argc)
            address = argv[++i];
        else if (strcmp(argv[i], "--relay") == 0 && i + 1 < argc)
            relay = argv[++i];
        else if (argv[i][0] != '-' && !username)
            username = argv[i];
        else {
            fprintf(stderr, "usage: %s USERNAME [--address ADDR] [--relay FILE]\n", argv[0]);
            return 2;
        }
    }
    if (!username) {
        fprintf(stderr, "usage: %s USERNAME [--address ADDR] [--relay FILE]\n", argv[0]);
        return 2;
    }

    sd_bus *bus = NULL;
    int r;
    if (address) {
        r = sd_bus_new(&bus);
        if (r >= 0)
            r = sd_bus_set_address(bus, address);
        if (r >= 0)
            r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
            r = sd_bus_start(bus);
    } else {
        r = sd_bus_open_system(&bus);
    }
    if (r < 0) {
        fprintf(stderr, "cannot reach the bus: %s\n", strerror(-r));
        sd_bus_unref(bus);
        set_relay(relay, false);
        return 1;
    }

    struct reply reply = {false, false};
    r = sd_bus_set_method_call_timeout(bus, CALL_TIMEOUT_USEC);
    if (r >= 0)
        r = sd_bus_match_signal(bus, NULL, SERVICE, PATH, INTERFACE, "CaptureFeedback", on_feedback,
                            NULL);
    if (r >= 0)
        r = sd_bus_match_signal(bus, NULL, SERVICE, PATH, INTERFACE, "Progress", on_progress, NULL);
    if (r >= 0)
        r = sd_bus_call_method_async(bus, NULL, SERVICE, PATH, INTERFACE, "Authenticate",
                                     on_reply, &reply, "s", username);
    /* Until the reply (or the call's timeout, which sd-bus answers as an error). */
    while (r >= 0 && !reply.done) {
        r = sd_bus_process(bus, NULL);
        if (r > 0)
            continue;
        if (r >= 0)
            r = sd_bus_wait(bus, CALL_TIMEOUT_USEC);
    }
    if (r < 0)
        printf("failed: %s\n", strerror(-r));
    sd_bus_flush_close_unref(bus);

    if (set_relay(relay, reply.granted) < 0)
        return 1;
    return reply.granted ? 0 : 1;
}
