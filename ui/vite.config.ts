// Build into ui/dist, which the API serves at /; `npm run dev` proxies /api to a running tickscan.
// No source maps in the build: the API would serve them to anyone (the whole source, 2 MB),
// and `npm run dev` has its own.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = process.env.TICKSCAN_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: {
      "/api": {
        target: api,
        ws: true,
        changeOrigin: true,
        // The API refuses a signed-in WebSocket from an origin other than its own: the dev
        // server's page is the API's own page here, so its sockets say so.
        configure: (proxy) => {
          proxy.on("proxyReqWs", (request) => request.setHeader("origin", new URL(api).origin));
        },
      },
    },
  },
});
