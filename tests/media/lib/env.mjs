// Where the media stack is, from the environment scripts/media-tests.sh
// exports (the same names as scripts/test.sh), with the stack's defaults.

export const env = {
  janusHttp: process.env.TH_JANUS_HTTP ?? 'http://127.0.0.1:58088/janus',
  janusWs: process.env.TH_JANUS_WS ?? 'ws://127.0.0.1:58188',
  base: process.env.TH_BASE ?? 'http://127.0.0.1:58080',
  pg: process.env.TH_PG ?? 'postgres://postgres@127.0.0.1:55432/telehealth',
  redisPort: Number(process.env.TH_REDIS_PORT ?? 56379),
  keys: process.env.TH_KEYS,
  // "full": the whole stack (nginx, our plugin); "janus": Janus alone with
  // the stock plugins, while ours is not built.
  stack: process.env.TH_MEDIA_STACK ?? 'full',
  // Set by scripts/netns.sh: media only works inside that namespace.
  netns: process.env.TH_NETNS,
};
