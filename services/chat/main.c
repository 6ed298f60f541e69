/* main.c: the chat service: its route table and its start. */
#include "sh_service.h"

static const sh_route chat_routes[] = {
    SH_ROUTE_END,
};

static const sh_service chat_service = {
    .name = "chat",
    .routes = chat_routes,
};

int main(int argc, char **argv)
{
    return sh_service_main(argc, argv, &chat_service);
}
