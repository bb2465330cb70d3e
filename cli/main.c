/*
 * cli/main.c - `cloister`, the owner's and clients' command: dispatch to
 * the commands (cmd_attest.c, cmd_owner.c, cmd_client.c, cmd_history.c,
 * cmd_rule.c, cmd_scenario.c, cmd_listen.c) and the overview
 * help. Every command has --help; exit status 0 success, 1 refused
 * (policy / the core said no), 2 usage or local error.
 */
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cloister COMMAND [options]   (cloister COMMAND --help for details)\n"
            "owner:\n"
            "  owner init --dir DIR          create the owner key and root certificate\n"
            "  measure [--image PATH]        MRENCLAVE / MRSIGNER of a core build\n"
            "  verify --server URI|--evidence FILE   appraise a core's evidence\n"
            "  provision --server URI --owner DIR    attest, claim and certify a fresh core\n"
            "  token create --owner DIR --role R     one-time enrollment token\n"
            "  client list|revoke ID|permit ID|groups ID G... --owner DIR   enrolled clients\n"
            "  event-type add NAME [--schema F]|list --owner DIR   the event types accepted\n"
            "rules and scenarios (owner, admins; users may read):\n"
            "  action-type add NAME|list|remove NAME --owner DIR   what rules may ask for\n"
            "  rule add FILE.json|list|show|remove|enable|disable|validate --owner DIR\n"
            "  publisher add NAME --key PUB.pem|list --owner DIR   scenario publishers' keys\n"
            "  scenario install TEMPLATE.json --name I [--param k=v]|list|remove I --owner DIR\n"
            "  scenario sign TEMPLATE.json --key KEY --publisher NAME   (publishers)\n"
            "clients:\n"
            "  enroll --server URI --token HEX --dir DIR --name N --owner-cert PATH\n"
            "  whoami --dir DIR              who the core thinks we are\n"
            "  device publish --dir DIR --type T [--prop k=v ...]   publish events\n"
            "  device listen --dir DIR [--count N] [--timeout S]    receive actions\n"
            "  history --dir DIR [--type T] [--since -1h] [--all]   events from the archive\n"
            "exit status: 0 ok, 1 refused (policy or the core), 2 usage or local error\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"measure", cli_cmd_measure}, {"verify", cli_cmd_verify},
                {"provision", cli_cmd_provision}, {"owner", cli_cmd_owner},
                {"token", cli_cmd_token},       {"client", cli_cmd_client},
                {"enroll", cli_cmd_enroll},     {"whoami", cli_cmd_whoami},
                {"device", cli_cmd_device},     {"event-type", cli_cmd_event_type},
                {"history", cli_cmd_history},     {"bench", cli_cmd_bench},
                {"action-type", cli_cmd_action_type}, {"rule", cli_cmd_rule},
                {"publisher", cli_cmd_publisher}, {"scenario", cli_cmd_scenario}};

    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_ERROR;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc, argv);
    cli_fail("unknown command '%s' (try cloister --help)", argv[1]);
    return CLI_EXIT_ERROR;
}
