/* main.c: the projects service: its route table and its start. */
#include "sh_service.h"

static const sh_route prj_routes[] = {
    SH_ROUTE_END,
};

static const sh_service prj_service = {
    .name = "projects",
    .routes = prj_routes,
};

int main(int argc, char **argv)
{
    return sh_service_main(argc, argv, &prj_service);
}
