/* ctl_start.c - the control layer's front door: the server with every
 * command table. The top of the control layer: it names the commands, so
 * the server (control.c) need not know any. */
#include "control/control.h"
#include "control/ctl_int.h"

static const struct ctl_cmd_table *const ctl_tables[] = {&ctl_node_table, &ctl_role_table};

int control_start(struct node *n, const char *path, struct control **out)
{
    return ctl_server_start(n, path, ctl_tables, sizeof ctl_tables / sizeof ctl_tables[0], out);
}
