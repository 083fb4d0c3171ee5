// Build into ui/dist, which the API serves at /; `npm run dev` proxies /api to a running tickscan.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = process.env.TICKSCAN_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      "/api": { target: api, ws: true, changeOrigin: true },
    },
  },
});
