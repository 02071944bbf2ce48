<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an Atom or RSS feed opened in a browser as a readable page. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="/atom:feed/atom:title | /rss/channel/title"/>
  <xsl:variable name="self" select="/atom:feed/atom:link[@rel='self']/@href | /rss/channel/atom:link[@rel='self']/@href"/>
  <xsl:variable name="home" select="/atom:feed/atom:link[@rel='alternate']/@href | /rss/channel/link"/>

  <xsl:template match="/">
    <html>
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="referrer" content="no-referrer"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body{font:16px/1.6 system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#222}
          .hint{background:#fff8e1;border:1px solid #f0d78c;border-radius:4px;padding:.6rem .8rem}
          code{background:#f3f3f3;padding:0 .2rem;word-break:break-all}.meta{color:#666;font-size:.9rem}
          li{margin:.7rem 0}
        </style>
      </head>
      <body>
        <p class="hint">This is a web feed. To subscribe, copy its address into your feed reader:
          <br/><code><xsl:value-of select="$self"/></code></p>
        <h1><xsl:value-of select="$title"/></h1>
        <p><xsl:value-of select="/atom:feed/atom:subtitle | /rss/channel/description"/></p>
        <p><a href="{$home}">Visit the site</a></p>
        <ul>
          <xsl:apply-templates select="/atom:feed/atom:entry | /rss/channel/item"/>
        </ul>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="atom:entry">
    <li>
      <a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a>
      <div class="meta"><xsl:value-of select="substring(atom:published, 1, 10)"/>
        <xsl:if test="atom:author/atom:name"> · <xsl:value-of select="atom:author/atom:name"/></xsl:if></div>
      <div><xsl:value-of select="atom:summary"/></div>
    </li>
  </xsl:template>

  <xsl:template match="item">
    <li>
      <a href="{link}"><xsl:value-of select="title"/></a>
      <div class="meta"><xsl:value-of select="pubDate"/>
        <xsl:if test="dc:creator"> · <xsl:value-of select="dc:creator"/></xsl:if></div>
      <div><xsl:value-of select="description"/></div>
    </li>
  </xsl:template>
</xsl:stylesheet>
