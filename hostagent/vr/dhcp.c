/* dhcp.c: DHCP and DNS of the private side, by a dnsmasq child.
 *
 * DESIGN: kvmstack-vr writes three files under its run directory and runs
 * `dnsmasq --keep-in-foreground --conf-file=RUN/dnsmasq.conf` as its
 * child (PR_SET_PDEATHSIG: it dies with us, and the next kvmstack-vr
 * starts a fresh one):
 *   dnsmasq.conf  interfaces, the static DHCP range of the subnet, router /
 *                 DNS / domain options, the upstream servers (none: it
 *                 answers only local names; it never reads resolv.conf)
 *   dhcp-hosts    --dhcp-hostsfile: "MAC,IP,HOSTNAME" per VM, so the
 *                 guest gets its address and its hostname option
 *   hosts         --addn-hosts: "IP HOSTNAME", so names resolve before a
 *                 lease exists (with a domain, also HOSTNAME.DOMAIN)
 * dnsmasq re-reads the last two on SIGHUP, so a VM added or removed costs
 * a signal; any other change rewrites dnsmasq.conf and restarts it.  A
 * start counts only when dnsmasq has written its pid file (its sockets are
 * bound by then); when it exits first, its stderr is the error.  A dnsmasq
 * that dies later is restarted by dhcp_tick(). */
#include "dhcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("vr.dhcp");

#define DHCP_LEASE_TIME "12h"
#define DHCP_START_TIMEOUT_MS 3000

struct dhcp {
    char *run_dir;              /* Where the files live. */
    char *dnsmasq;              /* Program to run. */
    pid_t pid;                  /* The running dnsmasq, or 0. */
    char *conf;                 /* Text of the running dnsmasq.conf, or
                                 * NULL when DHCP is off. */
    char *hosts;                /* Text of dhcp-hosts + hosts as written. */
    int64_t last_start;         /* time_msec() of the last start. */
};

struct dhcp *
dhcp_new(const char *run_dir, const char *dnsmasq)
{
    struct dhcp *d = xcalloc(1, sizeof *d);

    d->run_dir = xstrdup(run_dir);
    d->dnsmasq = xstrdup(dnsmasq ? dnsmasq : "dnsmasq");
    return d;
}

/* Stops dnsmasq (SIGTERM, then SIGKILL after a second) and reaps it. */
static void
dhcp_stop(struct dhcp *d)
{
    int status;

    if (!d->pid) {
        return;
    }
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            break;
        }
        usleep(10000);
    }
    if (d->pid) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &status, 0);
        d->pid = 0;
    }
    LOG_INFO("dnsmasq stopped");
}

void
dhcp_free(struct dhcp *d)
{
    if (!d) {
        return;
    }
    dhcp_stop(d);
    free(d->run_dir);
    free(d->dnsmasq);
    free(d->conf);
    free(d->hosts);
    free(d);
}

/* Writes 'text' to RUN/'name' atomically (temporary file + rename). */
static int
dhcp_write(struct dhcp *d, const char *name, const char *text)
{
    AUTOFREE char *path = xasprintf("%s/%s", d->run_dir, name);
    AUTOFREE char *tmp = xasprintf("%s/.%s.tmp", d->run_dir, name);
    FILE *f = fopen(tmp, "we");
    bool ok;

    if (!f) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot write '%s': %s", tmp,
                     strerror(errno));
        return -1;
    }
    ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot write '%s': %s", path,
                     strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static const char *
dhcp_ntop(struct in_addr a, char *buf)
{
    return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* dnsmasq.conf for 'cfg'; NULL with an error when no private NIC. */
static char *
dhcp_render_conf(struct dhcp *d, const struct vr_config *cfg)
{
    const struct vr_dhcp *dh = cfg->dhcp;
    struct in_addr mask;
    char a[INET_ADDRSTRLEN];
    char b[INET_ADDRSTRLEN];
    struct sbuf s;
    bool any = false;

    mask.s_addr = dh->subnet.len ? htonl(~0u << (32 - dh->subnet.len)) : 0;
    sbuf_init(&s);
    sbuf_addstr(&s, "# Written by kvmstack-vr from the router's "
                "configuration; do not edit.\n");
    sbuf_addf(&s, "user=root\npid-file=%s/dnsmasq.pid\n"
              "dhcp-leasefile=%s/dnsmasq.leases\n"
              "log-facility=%s/dnsmasq.log\n", d->run_dir, d->run_dir,
              d->run_dir);
    sbuf_addstr(&s, "bind-interfaces\n");
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        if (cfg->ifaces[i].role == VR_ROLE_PRIVATE) {
            sbuf_addf(&s, "interface=%s\n", cfg->ifaces[i].ifname);
            any = true;
        }
    }
    if (!any) {
        sbuf_destroy(&s);
        error_report_field(PROBLEM_INVALID_ARGUMENT, "dhcp",
                           "DHCP needs an interface with role \"private\"");
        return NULL;
    }
    sbuf_addstr(&s, "no-hosts\nno-resolv\ndomain-needed\nbogus-priv\n");
    for (size_t i = 0; i < dh->n_upstreams; i++) {
        sbuf_addf(&s, "server=%s\n", dhcp_ntop(dh->upstreams[i], a));
    }
    sbuf_addf(&s, "addn-hosts=%s/hosts\n", d->run_dir);
    if (dh->domain) {
        sbuf_addf(&s, "domain=%s\nlocal=/%s/\nexpand-hosts\n", dh->domain,
                  dh->domain);
    }
    sbuf_addf(&s, "dhcp-range=%s,static,%s,%s\n",
              dhcp_ntop(dh->subnet.net, a), dhcp_ntop(mask, b),
              DHCP_LEASE_TIME);
    sbuf_addstr(&s, "dhcp-authoritative\n");
    sbuf_addf(&s, "dhcp-hostsfile=%s/dhcp-hosts\n", d->run_dir);
    sbuf_addf(&s, "dhcp-option=option:router,%s\n",
              dhcp_ntop(dh->gateway, a));
    if (dh->n_dns) {
        sbuf_addstr(&s, "dhcp-option=option:dns-server");
        for (size_t i = 0; i < dh->n_dns; i++) {
            sbuf_addf(&s, ",%s", dhcp_ntop(dh->dns[i], a));
        }
        sbuf_addstr(&s, "\n");
    }
    return sbuf_take(&s);
}

/* The dhcp-hosts file, then a NUL, then the hosts file: one string so
 * that one comparison tells whether either changed. */
static char *
dhcp_render_hosts(const struct vr_config *cfg, size_t *split)
{
    const struct vr_dhcp *dh = cfg->dhcp;
    char a[INET_ADDRSTRLEN];
    struct sbuf s;

    sbuf_init(&s);
    for (size_t i = 0; i < dh->n_hosts; i++) {
        const struct vr_dhcp_host *h = &dh->hosts[i];

        sbuf_addf(&s, "%s,%s%s%s\n", h->mac, dhcp_ntop(h->ip, a),
                  h->hostname ? "," : "", h->hostname ? h->hostname : "");
    }
    *split = s.len;
    sbuf_add(&s, "", 1);
    for (size_t i = 0; i < dh->n_hosts; i++) {
        const struct vr_dhcp_host *h = &dh->hosts[i];

        if (h->hostname) {
            sbuf_addf(&s, "%s %s\n", dhcp_ntop(h->ip, a), h->hostname);
        }
    }
    return sbuf_take(&s);
}

/* The first line of RUN/dnsmasq.err (dnsmasq's startup complaint). */
static char *
dhcp_stderr(struct dhcp *d)
{
    AUTOFREE char *path = xasprintf("%s/dnsmasq.err", d->run_dir);
    char line[512] = "";
    FILE *f = fopen(path, "re");

    if (f) {
        while (fgets(line, sizeof line, f) && !strchr(line, ':')) {
            continue;
        }
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    return xstrdup(line[0] ? line : "no message");
}

/* Starts dnsmasq and waits until it has written its pid file.  Returns 0,
 * or -1 with dnsmasq's message reported when it exits first. */
static int
dhcp_start(struct dhcp *d)
{
    AUTOFREE char *conf = xasprintf("--conf-file=%s/dnsmasq.conf",
                                    d->run_dir);
    AUTOFREE char *pidfile = xasprintf("%s/dnsmasq.pid", d->run_dir);
    AUTOFREE char *errfile = xasprintf("%s/dnsmasq.err", d->run_dir);
    pid_t parent = getpid();
    int64_t deadline;
    pid_t pid;

    unlink(pidfile);
    d->last_start = time_msec();
    pid = fork();
    if (pid < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot fork dnsmasq: %s",
                     strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        sigset_t none;

        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(1);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0
            || dup2(out, 2) < 0) {
            _exit(126);
        }
        execlp(d->dnsmasq, d->dnsmasq, "--keep-in-foreground", conf,
               (char *) NULL);
        dprintf(2, "dnsmasq: cannot run '%s': %s\n", d->dnsmasq,
                strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    deadline = time_msec() + DHCP_START_TIMEOUT_MS;
    while (time_msec() < deadline) {
        int status;
        FILE *f;

        if (waitpid(pid, &status, WNOHANG) == pid) {
            AUTOFREE char *msg = dhcp_stderr(d);

            d->pid = 0;
            error_report(PROBLEM_INTERNAL_ERROR,
                         "dnsmasq exited with status %d: %s",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
            return -1;
        }
        f = fopen(pidfile, "re");
        if (f) {
            long p = 0;
            bool ok = fscanf(f, "%ld", &p) == 1 && p == pid;

            fclose(f);
            if (ok) {
                LOG_INFO("dnsmasq started (pid %ld)", (long) pid);
                return 0;
            }
        }
        usleep(5000);
    }
    LOG_WARN("dnsmasq (pid %ld) wrote no pid file in %d ms; assuming it "
             "runs", (long) pid, DHCP_START_TIMEOUT_MS);
    return 0;
}

int
dhcp_apply(struct dhcp *d, const struct vr_config *cfg, bool *changed)
{
    AUTOFREE char *conf = NULL;
    AUTOFREE char *hosts = NULL;
    size_t split = 0;
    bool conf_changed;
    bool hosts_changed;

    *changed = false;
    if (!cfg->dhcp) {
        if (d->conf || d->pid) {
            dhcp_stop(d);
            free(d->conf);
            free(d->hosts);
            d->conf = NULL;
            d->hosts = NULL;
            *changed = true;
        }
        return 0;
    }
    conf = dhcp_render_conf(d, cfg);
    if (!conf) {
        return -1;
    }
    hosts = dhcp_render_hosts(cfg, &split);
    conf_changed = !d->conf || strcmp(conf, d->conf) || !d->pid;
    hosts_changed = !d->hosts || split != strlen(d->hosts)
                    || memcmp(hosts, d->hosts, split)
                    || strcmp(hosts + split + 1,
                              d->hosts + strlen(d->hosts) + 1);
    if (!conf_changed && !hosts_changed) {
        return 0;
    }
    *changed = true;
    if (mkdir(d->run_dir, 0755) < 0 && errno != EEXIST) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot create '%s': %s",
                     d->run_dir, strerror(errno));
        return -1;
    }
    if (hosts_changed) {
        char *dhcp_hosts = xstrndup(hosts, split);
        int rc = dhcp_write(d, "dhcp-hosts", dhcp_hosts);

        free(dhcp_hosts);
        if (rc < 0 || dhcp_write(d, "hosts", hosts + split + 1) < 0) {
            return -1;
        }
    }
    if (conf_changed) {
        dhcp_stop(d);
        free(d->conf);
        d->conf = NULL;
        if (dhcp_write(d, "dnsmasq.conf", conf) < 0
            || dhcp_start(d) < 0) {
            return -1;
        }
        d->conf = STEAL(conf);
    } else if (kill(d->pid, SIGHUP) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot signal dnsmasq: %s",
                     strerror(errno));
        return -1;
    } else {
        LOG_INFO("dnsmasq: static hosts reloaded");
    }
    free(d->hosts);
    /* Keep both parts: the NUL in the middle is part of the value. */
    d->hosts = xmalloc(split + 1 + strlen(hosts + split + 1) + 1);
    memcpy(d->hosts, hosts, split + 1 + strlen(hosts + split + 1) + 1);
    return 0;
}

void
dhcp_tick(struct dhcp *d)
{
    int status;

    if (d->pid && waitpid(d->pid, &status, WNOHANG) == d->pid) {
        AUTOFREE char *msg = dhcp_stderr(d);

        LOG_WARN("dnsmasq (pid %ld) exited with status %d: %s",
                 (long) d->pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 msg);
        d->pid = 0;
    }
    if (!d->pid && d->conf && time_msec() - d->last_start >= 1000) {
        if (dhcp_start(d) < 0) {
            LOG_WARN_RL("dnsmasq restart failed: %s", error_last_message());
        }
    }
}
