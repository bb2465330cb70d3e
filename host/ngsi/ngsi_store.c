/*
 * ngsi_store.c - what both NGSI stores share (ngsi_store.h): log lines and
 * the WHERE clause of a query. UNTRUSTED HOST SIDE.
 *
 * The clause is built from placeholders only (?N for SQLite, $N for
 * PostgreSQL); every value - service, paths, ids, types - is a bound
 * parameter, never SQL text. A recursive service path "/A/#" is the index
 * range path = '/A' OR '/A/' <= path < '/A0' ('0' follows '/' in ASCII, and
 * both databases compare these columns bytewise).
 */
#include "ngsi_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ngsi_store_log(const ngsi_store_t *s, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (s->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, level, line);
}

void ngsi_store_clean_msg(char *out, size_t size, const char *msg)
{
    size_t o = 0;
    for (size_t i = 0; msg != NULL && msg[i] != '\0' && o + 1 < size; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\n' && msg[i + 1] == '\0')
            break;
        out[o++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? ' ' : (char)c;
    }
    out[o] = '\0';
}

static void ph(ngsi_sql_t *q)
{
    nb_printf(&q->sql, "%c%zu", q->ph, q->np);
}

static bool param(ngsi_sql_t *q, const char *v)
{
    if (q->np >= NGSI_SQL_MAX_PARAMS)
        return false;
    q->params[q->np++] = v;
    ph(q);
    return true;
}

bool ngsi_sql_where(ngsi_sql_t *q, const ngsi_query_t *qq)
{
    nb_puts(&q->sql, " WHERE service = ");
    if (!param(q, qq->service))
        return false;
    const ngsi_paths_t *ps = qq->paths;
    if (ps != NULL && ps->n > 0) {
        nb_puts(&q->sql, " AND (");
        for (size_t i = 0; i < ps->n; i++) {
            if (i > 0)
                nb_puts(&q->sql, " OR ");
            nb_puts(&q->sql, "path = ");
            if (!param(q, ps->p[i]))
                return false;
            if (ps->rec[i]) {
                size_t n = strlen(ps->p[i]);
                char *lo = q->scratch[2 * i], *hi = q->scratch[2 * i + 1];
                memcpy(lo, ps->p[i], n);
                memcpy(hi, ps->p[i], n);
                lo[n] = '/';
                hi[n] = '0';
                lo[n + 1] = hi[n + 1] = '\0';
                nb_puts(&q->sql, " OR (path >= ");
                if (!param(q, lo))
                    return false;
                nb_puts(&q->sql, " AND path < ");
                if (!param(q, hi))
                    return false;
                nb_putc(&q->sql, ')');
            }
        }
        nb_putc(&q->sql, ')');
    }
    if (qq->nids > 0) {
        nb_puts(&q->sql, " AND id IN (");
        for (size_t i = 0; i < qq->nids; i++) {
            if (i > 0)
                nb_putc(&q->sql, ',');
            if (!param(q, qq->ids[i]))
                return false;
        }
        nb_putc(&q->sql, ')');
    }
    if (qq->ntypes > 0) {
        nb_puts(&q->sql, " AND type IN (");
        for (size_t i = 0; i < qq->ntypes; i++) {
            if (i > 0)
                nb_putc(&q->sql, ',');
            if (!param(q, qq->types[i]))
                return false;
        }
        nb_putc(&q->sql, ')');
    }
    return !q->sql.failed;
}

void ngsi_sql_init(ngsi_sql_t *q, char ph_char)
{
    memset(q, 0, sizeof *q);
    nb_init(&q->sql, 64 * 1024);
    q->ph = ph_char;
}

void ngsi_sql_free(ngsi_sql_t *q)
{
    nb_free(&q->sql);
}
