/* main.c: the accounts service: its route table and its start. */
#include "sh_service.h"

static const sh_route acc_routes[] = {
    SH_ROUTE_END,
};

static const sh_service acc_service = {
    .name = "accounts",
    .routes = acc_routes,
};

int main(int argc, char **argv)
{
    return sh_service_main(argc, argv, &acc_service);
}
