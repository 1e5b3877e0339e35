declare module 'fastify' {
  interface FastifyRequest {
    /** Virtual time the request arrived (for the journal). */
    arrivedAt: number;
    /** The fault rule id that answered or slowed this request, 'throttle', or null. */
    fault: string | null;
    /** Set once the journal has this request (a reset connection is recorded before it is cut). */
    journaled: boolean;
    /** graphPathOfRequest's answer (null: not a Graph path); undefined until asked. */
    graphPath: string | null | undefined;
  }
}

export {};
